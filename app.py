"""Distill Studio: `python app.py [--share] [--port N] [--prior auto|tiny|real] [--device cpu|cuda] [--memory ...]`.

Also the entry point of a Hugging Face Space (app_file: app.py); every flag has an environment variable
(see demo/launch.py). Starts offline and without a GPU: the banner then says what is missing.
"""
import sys

from demo.launch import launch, parse_args

if __name__ == "__main__":
    launch(parse_args(sys.argv[1:]))
