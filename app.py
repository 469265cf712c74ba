"""Entry point: `python app.py` (or `gradio app.py` for auto-reload); a Hugging Face Space runs it.

On a Space with persistent storage (/data) the Hugging Face cache is put there first, before
huggingface_hub is imported (it reads HF_HOME once); an operator's own HF_HOME wins.
"""

from explorer.settings import check_or_exit, use_persistent_storage

use_persistent_storage()
check_or_exit()  # a bad EXPLORER_* value stops start-up here with one sentence

# After HF_HOME is chosen and the settings are checked (the UI reads them as it is imported)
from explorer.projection import warm_up_umap  # noqa: E402
from explorer.ui import build_demo, launch_kwargs  # noqa: E402

demo = build_demo()
warm_up_umap()  # numba compiles UMAP in the background; the atlas shows PCA until it is ready

if __name__ == "__main__":
    demo.launch(**launch_kwargs())
