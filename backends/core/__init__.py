"""The run's core and the machine it runs on: `runner` (the one code path of the CLI, the app and the API),
`registry` and `types` (the backends' contract), `settings` (the one settings parser), `errors`, `budget`
(what a run would cost) and `timing` (how long it would take), `interrupts` (how the CLIs end on Ctrl-C and
SIGTERM), `devices` (the device and the CPU threads), `files` (job folders, files written whole), `pixels`
(tensors <-> images and PNG files, what every backend writes) and `plugins` (the entry point groups)."""
