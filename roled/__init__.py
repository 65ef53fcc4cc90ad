"""roled: run the supervisord programs of the selected roles as PID 1."""
