"""The Gradio app: one module per tab (svg_tab, panorama_tab, video_tab, views3d_tab, image_tab), shared
widgets and the run plumbing in common.py / jobs.py, machine detection in environment.py, start-up in launch.py.
It knows Gradio and nothing about diffusion: every result comes from `backends.run`."""
from .launch import AppConfig, build_app, launch, parse_args

__all__ = ["AppConfig", "build_app", "launch", "parse_args"]
