-- execution.workflow_task, as in Attune's schema (JSONB, NULL outside
-- workflows): the worker reads whether it is set, because Attune's worker
-- gives a workflow task's API token access to its parent's action and pack,
-- and no other execution's.
ALTER TABLE attune.execution ADD COLUMN workflow_task JSONB;
