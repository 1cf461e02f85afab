-- Pantau schema, version 8: the days a village's figures cover.

-- collections_per_week is over the days of the period the village's bins have reported for
-- (from the first 15-minute fill bucket in the period; at least 1, at most period_days): a
-- village whose bins are a week old is not averaged over a month.
ALTER TABLE waste_village_figures ADD COLUMN days_reported double precision;
