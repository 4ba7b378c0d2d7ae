"""Shared test settings: never reach the network, keep torch to this machine's two cores."""
import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

import torch  # noqa: E402

# one thread: the suite is many small ops, and two OpenMP threads spin against the app servers the tests start
torch.set_num_threads(1)
