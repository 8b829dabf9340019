"""Background work: the job lifecycle every long task shares (start, pause, resume, cancel, time window, progress),
the scan schedule, and stopping on SIGINT/SIGTERM."""
