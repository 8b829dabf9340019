"""Background work: the job lifecycle every long task shares (``job.BackgroundJob``: start, pause, resume, cancel,
time window, progress, the last run), the scan schedule and window (``schedule``), and stopping on SIGINT/SIGTERM
(``shutdown``)."""
