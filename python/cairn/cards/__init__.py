"""Cards: HTML reports of tasks (Metaflow's `metaflow.cards`).

    from cairn import card
    from cairn.cards import Markdown, Table, Image, Artifact, VegaChart, ProgressBar, Error, get_cards
"""

from .client import Card, CardContainer, get_cards
from .components import (
    Artifact,
    CardComponent,
    Error,
    Image,
    Markdown,
    ProgressBar,
    Table,
    VegaChart,
)

__all__ = ["Artifact", "Card", "CardComponent", "CardContainer", "Error", "Image", "Markdown",
           "ProgressBar", "Table", "VegaChart", "get_cards"]
