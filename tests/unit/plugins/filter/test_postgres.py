"""pg_derived_name: the drill's scratch name, derived as the restore derives its own."""

from __future__ import annotations

import pytest

from ansible.errors import AnsibleFilterError
from ansible_collections.shipshape.ops.plugins.filter.postgres import FilterModule
from ansible_collections.shipshape.ops.plugins.module_utils.postgres import derived_name

pg_derived_name = FilterModule().filters()["pg_derived_name"]
STAMP = "_20261206T081530Z"


def test_a_short_name_is_kept_whole():
    assert pg_derived_name("drill_sales", STAMP) == "drill_sales_20261206T081530Z"


def test_a_long_name_is_shortened_as_the_restore_shortens_its_names():
    long_database = "drill_" + "customer_analytics_warehouse_eu_west_1_production_reports2"
    derived = pg_derived_name(long_database, STAMP)
    assert derived == derived_name(long_database, STAMP) and len(derived) == 63 and derived.startswith("drill_customer")
    other = pg_derived_name(long_database[:-1] + "3", STAMP)
    assert other != derived and other[:-len(STAMP) - 7] == derived[:-len(STAMP) - 7]


@pytest.mark.parametrize("name, suffix", [("", STAMP), ("drill_x", "_" * 60)])
def test_nothing_to_name_or_no_room_is_an_error(name, suffix):
    with pytest.raises(AnsibleFilterError, match="pg_derived_name: expected a name and a suffix"):
        pg_derived_name(name, suffix)
