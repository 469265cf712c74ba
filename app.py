"""Entry point: `python app.py` (or `gradio app.py` for auto-reload); a Hugging Face Space runs it.

On a Space with persistent storage (/data) the Hugging Face cache is put there first, before
huggingface_hub is imported (it reads HF_HOME once); an operator's own HF_HOME wins. With
EXPLORER_PACK=DIR (a class pack) the pack is checked and the Hugging Face cache is the pack's,
offline, likewise before huggingface_hub is imported. On a Space, `spaces` is imported before
anything else that uses torch (its docs ask for it), and on ZeroGPU the Space's own models are
placed on "cuda" here, in the main thread, before launch (see explorer/spaces/gpu_work.py);
elsewhere that step does nothing.
"""

from explorer.core.gpu import import_spaces
from explorer.core.pack import open_or_exit
from explorer.core.settings import check_or_exit, use_persistent_storage

use_persistent_storage()
check_or_exit()  # a bad EXPLORER_* value stops start-up here with one sentence
open_or_exit()  # a class pack from another version, or with a changed file, stops it here
import_spaces()  # on a Space: before torch is imported

# After HF_HOME is chosen and the settings are checked (the UI reads them as it is imported)
from explorer.analysis.projection import warm_up_umap  # noqa: E402
from explorer.spaces.gpu_work import preload  # noqa: E402
from explorer.ui.app import build_demo, launch_kwargs  # noqa: E402

demo = build_demo()
preload()  # ZeroGPU: the Space's models on "cuda", packed by the package at launch

if __name__ == "__main__":
    # Launched first: Gradio's start-up check asks the new server for its page once, with a 3 s
    # timeout, and gives up on a busy machine if numba is compiling in the same process.
    demo.launch(**launch_kwargs(), prevent_thread_lock=True)
    warm_up_umap()  # numba compiles UMAP in the background; the atlas shows PCA until it is ready
    demo.block_thread()
else:  # `gradio app.py` (auto-reload) imports this module and launches `demo` itself
    warm_up_umap()
