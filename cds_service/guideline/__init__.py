"""The tacrolimus-magnesium guideline: thresholds, value sets, facts, rules and cards.

Nothing in this package imports Flask or performs I/O: it turns FHIR data already in memory
into findings and cards, with the clock and the thresholds passed in.
"""
