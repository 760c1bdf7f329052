"""What is searchable: the fields of a listing, how much a match in each counts, the listing kinds and
the number kinds. Every other module names fields and kinds by the codes defined here; the stored index
does too, so changing an order here changes ``INDEX_FORMAT``.
"""

from __future__ import annotations

import numpy as np

__all__ = ["FIELDS", "FIELD_CODE", "FIELD_WEIGHT", "NAME_FIELDS", "GIVEN_FIELDS", "NUMBER_KINDS",
           "NUMBER_KIND_CODE", "LISTING_KINDS", "KIND_CODE", "SCHEDULE", "KIND_PRIOR", "KIND_TIE_RANK", "LISTING_PHRASE_COLUMNS"]

#: Searchable fields and their weight (how much a match there counts). "name" is the display name.
_WEIGHTS = {"name": 1.0, "given_name": 1.0, "middle_name": 0.8, "family_name": 1.0, "alias": 0.95,
            "keyword": 0.6, "title": 0.55, "department": 0.65, "site": 0.45, "building": 0.4, "floor": 0.3,
            "room": 0.45}
FIELDS = tuple(_WEIGHTS)
FIELD_CODE = {name: code for code, name in enumerate(FIELDS)}
FIELD_WEIGHT = np.array(list(_WEIGHTS.values()), dtype=np.float32)

#: Fields that name the listing (a match there counts towards covering the whole name).
NAME_FIELDS = np.zeros(len(FIELDS), dtype=bool)
NAME_FIELDS[[FIELD_CODE[f] for f in ("name", "given_name", "middle_name", "family_name", "alias")]] = True

#: Where a given name can be: nicknames apply there only.
GIVEN_FIELDS = frozenset(FIELD_CODE[f] for f in ("name", "given_name", "alias"))

#: Listing columns indexed once per distinct value (column, field).
LISTING_PHRASE_COLUMNS = (("given_name", "given_name"), ("middle_name", "middle_name"),
                          ("family_name", "family_name"), ("aliases", "alias"), ("keywords", "keyword"),
                          ("title", "title"), ("department", "department"), ("site", "site"),
                          ("building", "building"), ("floor", "floor"), ("room", "room"))

#: Number kinds indexed by digits (email is not a number).
NUMBER_KINDS = ("extension", "phone", "mobile", "pager", "fax", "voip", "overhead")
NUMBER_KIND_CODE = {name: code for code, name in enumerate(NUMBER_KINDS)}

LISTING_KINDS = ("person", "department", "location", "service", "schedule")
KIND_CODE = {name: code for code, name in enumerate(LISTING_KINDS)}
SCHEDULE = KIND_CODE["schedule"]
#: A whisker of preference when everything else ties: a department's main line before a person.
KIND_PRIOR = np.array([0.0, 0.004, 0.002, 0.003, 0.001], dtype=np.float32)
#: Order of listing kinds among equal scores: the same preference (department, service, location,
#: schedule, person).
KIND_TIE_RANK = np.argsort(np.argsort(-KIND_PRIOR, kind="stable"), kind="stable").astype(np.int64)
