package qwen.gateway.session;

/**
 * A session as clients see it: what the store holds plus what only the running gateway knows.
 *
 * @param session the stored session
 * @param historyTokens tokens of the system block and every committed message rendered as ChatML
 * @param runningRequestId the request id of the turn running now, "" when none runs
 */
public record SessionState(Session session, int historyTokens, String runningRequestId) {
}
