"""Benchmarks of roled against bare supervisord and the shell-script recipe (issue 7)."""
