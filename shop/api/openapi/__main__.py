"""Print the OpenAPI document: ``python -m shop.api.openapi > docs/openapi.json``."""

from __future__ import annotations

import json

from shop.api.openapi import document

print(json.dumps(document(), indent=2, ensure_ascii=False))
