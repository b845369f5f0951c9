"""Stage 7, the rollover: what is published, the decision, the plan, the served view, state."""
