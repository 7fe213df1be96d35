"""The decision from Serendip's own measurements: report, stakeholder deck, cost model."""
