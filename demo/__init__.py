"""The Gradio app. One job per file: `launch` (flags, build, start-up), `tab` (TabSpec and the Tab that builds a
tab's widgets), one module per concern of a built tab (`examples`: the examples table; `request_form`: widgets ->
request JSON; `expected_time`: the time beside Run; `wiring`: its events and endpoints; `stop`: Stop), one module
per known tab (svg_tab, panorama_tab, video_tab, views3d_tab, image_tab; other registered tasks get a generic
tab), `widgets` (settings panels, result widgets, report, banner), `runs` (the run handler), `requests` (request
JSON, bounds, CLI line, prior allow-list; no gradio), `metrics` (what each number means; no gradio), `jobs`,
`environment`, `style`. It knows Gradio and nothing about diffusion: every result comes from `backends.run`.

The launch names are imported on first use, so `import demo.requests` does not pull in gradio."""

__all__ = ["AppConfig", "build_app", "launch", "parse_args"]


def __getattr__(name: str):
    if name in __all__:
        import importlib

        # by full name: `from . import launch` would ask this __getattr__ for "launch" (the function) again
        return getattr(importlib.import_module("demo.launch"), name)
    raise AttributeError(f"module 'demo' has no attribute {name!r}")
