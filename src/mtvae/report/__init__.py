"""The study report: the Answer (hypotheses, verdicts, crossovers), tables and figures -> HTML + Markdown."""
