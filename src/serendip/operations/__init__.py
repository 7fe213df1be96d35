"""Running Serendip safely: live quality and drift monitors, gated retraining with lineage."""
