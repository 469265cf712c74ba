"""Entry point: `python app.py` (or `gradio app.py` for auto-reload)."""

from explorer.ui import CSS, build_demo

demo = build_demo()

if __name__ == "__main__":
    demo.launch(css=CSS)
