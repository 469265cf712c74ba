"""The only gradio imports: the demo (:mod:`.app`), shared components, and one package per tab."""
