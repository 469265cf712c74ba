"""The atlas tab's evidence blocks and their wiring: the selection shared by every panel (just
under the panels), the similarity matrix and the per-point overlap of two spaces (under the
metrics table). :func:`build` makes the blocks where the tab's layout calls them and wires them
once the panels exist."""

from __future__ import annotations

import gradio as gr

from explorer.atlas import MAX_SPACES
from explorer.spaces.embed import FAMILIES
from explorer.ui.atlas.evidence import CONTROLS_INTRO
from explorer.ui.atlas.evidence_handlers import (
    on_atlas_lasso,
    on_atlas_overlap,
    on_atlas_overlap_clear,
    on_atlas_selection,
    on_evidence_opened,
)
from explorer.ui.components import listen

SPACE_KEYS = [
    f"{family}{'' if i == 1 else i}" for family in FAMILIES for i in range(1, MAX_SPACES + 1)
]
"""The keys an atlas may give its spaces: the family, then family2, family3, ... for repeats."""
SELECTION_HELP = (
    "**Select in any panel** with the lasso or box tool (top right of each panel): the same "
    "images are selected in every panel, shown below, and the sentence says what they share."
)
SIMILARITY_HELP = (
    "### How alike the spaces are\n"
    "**Linear CKA** compares the spaces' whole geometry (1: the same up to rotation and scale; "
    "about 0: unrelated). **Mutual 10-NN** is the share of each image's 10 nearest neighbours "
    "found in both spaces, averaged (1: the same neighbourhoods; unrelated spaces give about "
    "10 / images). Where the set groups its images (a photo's versions), each image's own "
    "group is left out of its 10, as in the metrics."
)
OVERLAP_HELP = (
    "### Where two spaces disagree\nColour every panel by how many of each image's 10 nearest "
    "neighbours the two spaces share, and list the images whose neighbours change most."
)


class EvidenceBlocks:
    """The components of the evidence blocks, made by :meth:`selection` and :meth:`comparison`
    inside the tab's layout and wired by :meth:`wire`."""

    def selection(self) -> None:
        """Under the panels: the selection's sentence, its gallery and a clear button."""
        gr.Markdown(SELECTION_HELP, elem_id="atlas-selection-help")
        self.selection_md = gr.Markdown(elem_id="atlas-selection")
        self.selection_gallery = gr.Gallery(
            visible=False,
            columns=12,
            height=150,
            object_fit="cover",
            allow_preview=False,
            label="Selected images",
            elem_id="atlas-selection-gallery",
        )
        with gr.Row():
            self.clear_btn = gr.Button("Clear the selection", size="sm", scale=0)
        self.selection_in = gr.JSON(visible=False)  # the API's list of indices

    def comparison(self) -> gr.Dataframe:
        """Under the metrics: the controls' note, the similarity matrix, its numbers, the overlap
        view. Returns the similarity table (the openers fill it)."""
        gr.Markdown(CONTROLS_INTRO, elem_id="atlas-controls-note")
        gr.Markdown(SIMILARITY_HELP)
        self.similarity_plot = gr.Plot(show_label=False, visible=False, elem_id="atlas-similarity")
        with gr.Accordion("The numbers (similarity.csv)", open=False):
            table = gr.Dataframe(
                label="Linear CKA and mutual 10-NN of every pair of spaces",
                interactive=False,
                visible=False,
                elem_id="atlas-similarity-table",
            )
        with gr.Column(visible=False) as self.overlap_group:
            gr.Markdown(OVERLAP_HELP)
            with gr.Row():
                # every key an atlas can give its spaces, so that an API client's session (which
                # never receives an open's choices) passes Gradio's check; the handler then checks
                # the key against the open atlas. After an open the choices are its spaces.
                self.space_a, self.space_b = (
                    gr.Dropdown(SPACE_KEYS, label=label, elem_id=f"atlas-overlap-{e}")
                    for label, e in (("Space", "a"), ("against", "b"))
                )
                self.overlap_btn = gr.Button("Colour by agreement", variant="secondary")
                self.labels_btn = gr.Button("Back to the labels' colours")
        self.overlap_md = gr.Markdown(elem_id="atlas-overlap")
        self.changes_gallery = gr.Gallery(
            visible=False,
            columns=12,
            height=170,
            object_fit="cover",
            allow_preview=False,
            elem_id="atlas-changes",
        )
        return table

    def wire(self, api: gr.Button, atlas_id: gr.State, shown: gr.State, view: gr.HTML) -> None:
        """The events: lasso/box in the panels, the API's selection, clear, the overlap view, and
        what an open (or a failed one) refreshes."""
        sel_out = [view, self.selection_md, self.selection_gallery]
        view.points_selected(
            on_atlas_lasso, [atlas_id, shown], sel_out, api_name=False, show_progress="hidden"
        )
        api.click(
            on_atlas_selection,
            [atlas_id, shown, self.selection_in],
            sel_out,
            api_name="atlas_selection",
        )
        self.clear_btn.click(
            lambda aid, m: on_atlas_selection(aid, m, []),
            [atlas_id, shown],
            sel_out,
            api_name=False,
        )
        overlap_out = [view, self.overlap_md, self.changes_gallery]
        listen(
            self.overlap_btn.click,
            api,
            on_atlas_overlap,
            [atlas_id, shown, self.space_a, self.space_b],
            overlap_out,
            api_name="atlas_overlap",
            slot=1,
            cleared=lambda _e: (gr.skip(), "", gr.update(value=None, visible=False)),
        )
        self.labels_btn.click(
            on_atlas_overlap_clear, [atlas_id, shown], overlap_out, api_name=False
        )
        atlas_id.change(
            on_evidence_opened,
            [atlas_id],
            [
                self.similarity_plot,
                self.overlap_group,
                self.space_a,
                self.space_b,
                self.selection_md,
                self.selection_gallery,
                self.overlap_md,
                self.changes_gallery,
            ],
            api_name=False,
            show_progress="hidden",
        )


def build() -> EvidenceBlocks:
    """An empty :class:`EvidenceBlocks` (its blocks are made where the layout calls them)."""
    return EvidenceBlocks()
