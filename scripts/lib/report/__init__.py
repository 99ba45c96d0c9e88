"""The report: results table, statistics, tables, figures, manuscript, cross-check, publishing."""
