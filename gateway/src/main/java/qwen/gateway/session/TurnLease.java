package qwen.gateway.session;

import qwen.gateway.chat.GatewayException;

/**
 * A session's turn, reserved in the session store for every gateway that shares it, so that a
 * session runs one turn at a time across gateways as it does within one. Both ways of giving it
 * back are idempotent.
 */
public interface TurnLease {

    /** The lease of a store that only one gateway uses: the gateway's own reservation is enough. */
    TurnLease LOCAL = new TurnLease() {
        @Override
        public boolean release() {
            return false;
        }

        @Override
        public void releaseLater(Runnable ifDeleted) {
        }
    };

    /** The error for a turn asked for while another one runs on the session, on this gateway or another. */
    static GatewayException busy(String sessionId, String runningRequestId) {
        return new GatewayException(GatewayException.Kind.FAILED_PRECONDITION, "session " + sessionId
                + " is already running a turn (request_id " + runningRequestId + "); wait for it to finish or cancel it");
    }

    /**
     * Gives the turn back now (blocking I/O): the next turn, on any gateway, may start once this
     * returns.
     *
     * @return true when the session was deleted while this lease held it (on any gateway): the
     *     gateway that deleted it left the turn's KV to this one to free; false otherwise, and on
     *     every call after the first
     */
    boolean release();

    /**
     * Gives the turn back without blocking the caller, for threads that must not block; runs
     * {@code ifDeleted} afterwards (on another thread) when {@link #release()} would have returned
     * true.
     */
    void releaseLater(Runnable ifDeleted);
}
