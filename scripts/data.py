"""Stage 1 - data: read a source once into the cached dataset file every job reads.

    python -m scripts.data download-cifar10 --out resources/cifar-10-python.tar.gz
    python -m scripts.data download-jpeg-mirror --out resources/CIFAR-10-images-6d04f75.tar.gz
    python -m scripts.data prepare --job '{...}' [--input SOURCE] --out dataset.pt --summary dataset.json

The job (scripts.lib.planning.jobs.DataJob) is the config's data section; --input is
the source file or folder (torchvision's tarball, an image folder), none when generated.
"""
import argparse
import dataclasses

from scripts.lib.data.datasets import DataError, download_cifar10, download_jpeg_mirror, prepare, summary
from scripts.lib.files import log, save_torch, setup_logging, write_json
from scripts.lib.planning.jobs import DataJob


def main(argv=None) -> None:
    setup_logging()
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("download-cifar10", help="fetch cifar-10-python.tar.gz").add_argument("--out", required=True)
    sub.add_parser("download-jpeg-mirror", help="fetch the pinned JPEG mirror's archive").add_argument("--out", required=True)
    pr = sub.add_parser("prepare", help="read a source into the cached tensor file")
    pr.add_argument("--job", required=True, type=DataJob.argument(), help="the settings (JSON)")
    pr.add_argument("--input", help="the source file or folder (none for generated data)")
    pr.add_argument("--out", required=True, help="the cached tensor file")
    pr.add_argument("--summary", required=True, help="JSON facts about the data, for the paper")
    args = parser.parse_args(argv)
    try:
        if args.command == "download-cifar10":
            download_cifar10(args.out)
            return
        if args.command == "download-jpeg-mirror":
            download_jpeg_mirror(args.out)
            return
        job = args.job
        data = prepare(job.source, args.input, job.val_fraction, job.num_classes, job.image_size, job.seed,
                       dataclasses.asdict(job.synthetic))
    except DataError as e:
        raise SystemExit(f"error: {e}") from None
    save_torch(data, args.out)
    write_json(summary(data), args.summary)
    log.info("%s: %d train (%d held out for validation), %d test images, %d classes, sha256 %s, content sha256 %s",
             data["origin"], len(data["train_labels"]), len(data["val_index"]), len(data["test_labels"]),
             len(data["classes"]), data["source_sha256"], data["content_sha256"])


if __name__ == "__main__":
    main()
