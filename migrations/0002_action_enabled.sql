-- attune-worker extension: an action can be switched off in its YAML file
-- (`enabled: false`); `attunectl pack load` records it and the worker refuses
-- to run a disabled action.
ALTER TABLE attune.action ADD COLUMN enabled BOOLEAN NOT NULL DEFAULT true;
