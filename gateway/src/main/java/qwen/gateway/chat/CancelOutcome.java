package qwen.gateway.chat;

/** What a cancel by request id found (qwen.chat.v1.CancelOutcome). */
public enum CancelOutcome {
    /** A running request had the id; it stops within one step and ends as cancelled. */
    CANCELLED,
    /** No running request has the id: never used, or finished before the cancel arrived. */
    NOT_FOUND,
    /** It ran on another gateway when the cancel arrived but ended on its own before that gateway could stop it. */
    ALREADY_FINISHED
}
