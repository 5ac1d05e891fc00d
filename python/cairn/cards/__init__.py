"""Cards: HTML reports of tasks (Metaflow's `metaflow.cards`).

    from cairn import card
    from cairn.cards import Markdown, Table, Image, Artifact, VegaChart, ProgressBar, Error, get_cards
"""

__all__ = ["Artifact", "Card", "CardComponent", "CardContainer", "Error", "Image", "Markdown",
           "ProgressBar", "Table", "VegaChart", "get_cards"]

# Loaded on first use, so that a run whose flow has no @card (its CLI and
# worker import cairn.cards.runtime's neighbours) does not
# load the card client and components.
_FROM_CLIENT = ("Card", "CardContainer", "get_cards")


def __getattr__(name: str) -> object:
    if name not in __all__:
        raise AttributeError(f"module 'cairn.cards' has no attribute {name!r}")
    if name in _FROM_CLIENT:
        from . import client as module
    else:
        from . import components as module
    value = getattr(module, name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
