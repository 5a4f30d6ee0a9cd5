"""The field names of agno 3.1.10's run, message, tool and metrics records, and agno 1.x's metric renames.

agno is not imported here: tests/test_agno3.py checks these sets against agno
3.1.10's own dataclasses.
"""

from __future__ import annotations

# Field names of agno 3.1.10's dataclasses (agno.run.agent.RunOutput, ...);
# tests/test_agno3.py checks them against agno 3.1.10 itself.
AGENT_RUN_FIELDS = frozenset(
    "run_id agent_id agent_name session_id parent_run_id workflow_id user_id input content content_type "
    "reasoning_content reasoning_steps reasoning_messages model_provider_data model model_provider messages "
    "metrics compaction additional_input tools images videos audio files response_audio citations references "
    "followups metadata session_state created_at events status queue_attempt cancellation_stage requirements "
    "last_checkpoint_at_message_index forked_from_run_id forked_from_message_index forked_from_session_id "
    "regenerated_from workflow_step_id".split()
)
TEAM_RUN_FIELDS = frozenset(
    "run_id team_id team_name session_id parent_run_id user_id input content content_type messages metrics "
    "model model_provider member_responses tools images videos audio files response_audio reasoning_content "
    "citations followups model_provider_data metadata session_state references additional_input "
    "reasoning_steps reasoning_messages created_at events status queue_attempt cancellation_stage requirements "
    "last_checkpoint_at_message_index forked_from_run_id forked_from_message_index forked_from_session_id "
    "regenerated_from workflow_step_id".split()
)
WORKFLOW_RUN_FIELDS = frozenset(
    "input content content_type workflow_id workflow_name run_id session_id user_id parent_run_id "
    "workflow_step_id images videos audio files response_audio step_results step_executor_runs "
    "workflow_agent_run events metrics metadata created_at status queue_attempt cancellation_stage "
    "step_requirements error_requirements paused_step_index paused_step_name pause_kind".split()
)
MESSAGE_FIELDS = frozenset(
    "id role content compressed_content name tool_call_id tool_calls audio images videos files audio_output "
    "image_output video_output file_output redacted_reasoning_content provider_data citations "
    "reasoning_content tool_name tool_args tool_call_error stop_after_tool_call add_to_agent_memory "
    "from_history metrics references created_at temporary checkpoint_status checkpoint_created_at".split()
)
TOOL_FIELDS = frozenset(
    "tool_call_id tool_name tool_args tool_call_error result metrics child_run_id stop_after_tool_call "
    "created_at requires_confirmation confirmed confirmation_note requires_user_input user_input_schema "
    "user_feedback_schema answered external_execution_required external_execution_silent approval_type "
    "approval_id parent_tool_call_id".split()
)
METRICS_FIELDS = frozenset(
    "input_tokens output_tokens total_tokens audio_input_tokens audio_output_tokens audio_total_tokens "
    "cache_read_tokens cache_write_tokens reasoning_tokens cost time_to_first_token duration details "
    "additional_metrics".split()
)
SESSION_METRICS_FIELDS = METRICS_FIELDS - {"time_to_first_token", "duration"}

#: agno 1.x metric names and their agno 3 names (agno's own v1_to_v2 table).
METRIC_RENAMES = {
    "time": "duration",
    "audio_tokens": "audio_total_tokens",
    "input_audio_tokens": "audio_input_tokens",
    "output_audio_tokens": "audio_output_tokens",
    "cached_tokens": "cache_read_tokens",
}

#: agno 3's run statuses (agno.run.base.RunStatus values).
STATUSES = ("PENDING", "RUNNING", "COMPLETED", "PAUSED", "CANCELLED", "ERROR", "REGENERATED")

#: The event names agno 3.1.10 has a class for (``agno.run.agent.RUN_EVENT_TYPE_REGISTRY``, the team's and the
#: workflow's); a stored run holding an event of another name fails to load (tests/test_agno3.py checks them).
AGENT_EVENTS = frozenset(
    "CompactionCompleted CompactionStarted CompressionCompleted CompressionStarted CustomEvent FollowupsCompleted "
    "FollowupsStarted MemoryUpdateCompleted MemoryUpdateStarted ModelRequestCompleted ModelRequestStarted "
    "OutputModelResponseCompleted OutputModelResponseStarted ParserModelResponseCompleted "
    "ParserModelResponseStarted PostHookCompleted PostHookStarted PreHookCompleted PreHookStarted "
    "ReasoningCompleted ReasoningContentDelta ReasoningStarted ReasoningStep RunCancelled RunCompleted RunContent "
    "RunContentCompleted RunContinued RunError RunIntermediateContent RunPaused RunStarted "
    "SessionSummaryCompleted SessionSummaryStarted ToolCallCompleted ToolCallError ToolCallStarted".split()
)
TEAM_EVENTS = frozenset(
    "CustomEvent TeamCompressionCompleted TeamCompressionStarted TeamFollowupsCompleted TeamFollowupsStarted "
    "TeamMemoryUpdateCompleted TeamMemoryUpdateStarted TeamModelRequestCompleted TeamModelRequestStarted "
    "TeamOutputModelResponseCompleted TeamOutputModelResponseStarted TeamParserModelResponseCompleted "
    "TeamParserModelResponseStarted TeamPostHookCompleted TeamPostHookStarted TeamPreHookCompleted "
    "TeamPreHookStarted TeamReasoningCompleted TeamReasoningContentDelta TeamReasoningStarted TeamReasoningStep "
    "TeamRunCancelled TeamRunCompleted TeamRunContent TeamRunContentCompleted TeamRunContinued TeamRunError "
    "TeamRunIntermediateContent TeamRunPaused TeamRunStarted TeamSessionSummaryCompleted "
    "TeamSessionSummaryStarted TeamTaskCreated TeamTaskIterationCompleted TeamTaskIterationStarted "
    "TeamTaskStateUpdated TeamTaskUpdated TeamToolCallCompleted TeamToolCallError TeamToolCallStarted".split()
)
WORKFLOW_EVENTS = frozenset(
    "ConditionExecutionCompleted ConditionExecutionStarted CustomEvent LoopExecutionCompleted "
    "LoopExecutionStarted LoopIterationCompleted LoopIterationStarted ParallelExecutionCompleted "
    "ParallelExecutionStarted RouterExecutionCompleted RouterExecutionStarted RouterPaused StepCompleted "
    "StepContinued StepError StepExecutorContinued StepExecutorPaused StepOutput StepOutputReview StepPaused "
    "StepProgress StepStarted StepsExecutionCompleted StepsExecutionStarted WorkflowAgentCompleted "
    "WorkflowAgentStarted WorkflowCancelled WorkflowCompleted WorkflowError WorkflowPaused WorkflowStarted".split()
)
