"""Entry point: `python app.py` (or `gradio app.py` for auto-reload)."""

from explorer.projection import warm_up_umap
from explorer.settings import check_or_exit
from explorer.ui import build_demo, launch_kwargs

check_or_exit()  # a bad EXPLORER_* value stops start-up here with one sentence
demo = build_demo()
warm_up_umap()  # numba compiles UMAP in the background; the atlas shows PCA until it is ready

if __name__ == "__main__":
    demo.launch(**launch_kwargs())
