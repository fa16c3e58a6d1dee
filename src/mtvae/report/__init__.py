"""The study report: tables, statistics, generated findings and figures -> HTML + Markdown."""
