import os

from snakemake.utils import min_version

# The pruning study, from data to rendered paper. This file is a table of
# contents: the stages live in workflow/rules, the code they run in scripts/.
#
#   snakemake --cores 4                                          # the real paper
#   snakemake --cores 2 --configfile workflow/presets/quick.yaml # offline quick preset

min_version("9.27.1")


# The study as shipped; --configfile FILE merges a preset over it.
configfile: os.path.join(workflow.basedir, "config.yaml")


# snakemake --report report.html: every figure and table with its caption, by stage.
report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/finetune.smk"
include: "workflow/rules/prune.smk"
include: "workflow/rules/controls.smk"
include: "workflow/rules/evaluate.smk"
include: "workflow/rules/figures.smk"
include: "workflow/rules/paper.smk"
include: "workflow/rules/release.smk"


rule all:
    default_target: True
    input:
        final_targets(),
