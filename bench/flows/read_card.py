"""card: read the default card of Card20Flow's start task back; prints its
render time (as the card records it) and its size. One JSON line."""

import json
import re

from cairn import Flow
from cairn.cards import get_cards

task = Flow("Card20Flow").latest_run["start"].task
html = get_cards(task)[0].html
render = float(re.search(r'id="cairn-render-seconds">([0-9.]+)<', html).group(1))
print(json.dumps({"render_s": render, "card_mb": len(html.encode()) / 1e6, "artifacts": len(list(task)), "rows": int(task.data.rows)}))
