package qwen.gateway.session;

import io.smallrye.mutiny.Multi;
import jakarta.enterprise.context.ApplicationScoped;
import java.time.Clock;
import java.util.Map;
import java.util.Objects;
import java.util.Optional;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import org.jboss.logging.Logger;
import qwen.gateway.chat.CancelOutcome;
import qwen.gateway.chat.ChatMessage.Role;
import qwen.gateway.chat.ChatTemplate;
import qwen.gateway.chat.Conversation;
import qwen.gateway.chat.GatewayException;
import qwen.gateway.chat.GenerationDefaults;
import qwen.gateway.chat.GenerationEvent;
import qwen.gateway.chat.GenerationEvent.Finished;
import qwen.gateway.chat.GenerationEvent.FinishReason;
import qwen.gateway.chat.GenerationRequest;
import qwen.gateway.chat.GenerationSettings;
import qwen.gateway.chat.Generations;
import qwen.gateway.chat.PromptBuilder;
import qwen.gateway.chat.RequestedParams;
import qwen.gateway.tokenizer.QwenTokenizer;

/**
 * Sessions and their turns: the history lives in the {@link SessionStore}; a turn renders it with
 * the new user message into a prompt, generates on the session's stable sequence id with the KV
 * kept (so the next turn prefills only its new tokens), and commits (user message, stripped reply)
 * when the turn ends with STOP or LENGTH. A cancelled or failed turn commits nothing. One turn runs
 * per session at a time.
 *
 * <p>Deleting a session stops its running turn wherever it runs (this gateway, or another one
 * sharing a networked store). The outcome is decided by the store's order of the turn's commit and
 * the delete: a turn that committed first ends with its own Finished (its exchange went with the
 * session); any other ends with CANCELLED and commits nothing, even one whose generation had just
 * completed. The KV is freed by the gateway that runs the turn, once it has ended.
 *
 * <p>Every method does blocking work (file I/O, tokenization); call it off event-loop threads.
 */
@ApplicationScoped
public class SessionService {

    private static final Logger LOG = Logger.getLogger(SessionService.class);
    /** Limits of CreateSession (session.proto). */
    static final int MAX_TITLE_CHARS = 256;
    static final int MAX_METADATA_ENTRIES = 32;
    static final int MAX_METADATA_KEY_BYTES = 64;
    static final int MAX_METADATA_VALUE_BYTES = 1024;
    /** How long DeleteSession waits for a cancelled turn to let go of its KV. */
    private static final long CANCEL_WAIT_SECONDS = 10;

    private final SessionStore store;
    private final Generations generations;
    private final PromptBuilder prompts;
    private final QwenTokenizer tokenizer;
    private final GenerationDefaults defaults;
    private final SequenceLimits limits;
    private final Clock clock = Clock.systemUTC();
    /** Session id -> its running turn. */
    private final ConcurrentHashMap<String, RunningTurn> running = new ConcurrentHashMap<>();

    /**
     * A turn in progress; {@code ended} completes once the engine has let go of its sequence. Its
     * lease in the store is taken once the turn holds this gateway's reservation.
     */
    private static final class RunningTurn {
        private final String requestId;
        private final CompletableFuture<Void> ended = new CompletableFuture<>();
        private volatile TurnLease lease = TurnLease.LOCAL;
        /** The session's KV identity, once the session is read under the lease. */
        private volatile String sequenceId;
        /** Deleted through this gateway, which frees the KV once the turn has ended. */
        private volatile boolean deletedHere;

        RunningTurn(String requestId) {
            this.requestId = requestId;
        }

        String requestId() {
            return requestId;
        }

        CompletableFuture<Void> ended() {
            return ended;
        }
    }

    SessionService(SessionStore store, Generations generations, PromptBuilder prompts, QwenTokenizer tokenizer,
                   GenerationDefaults defaults, SequenceLimits limits) {
        this.store = store;
        this.generations = generations;
        this.prompts = prompts;
        this.tokenizer = tokenizer;
        this.defaults = defaults;
        this.limits = limits;
    }

    /**
     * Creates an empty session.
     *
     * @param systemPrompt null for the model's default system prompt
     * @throws GatewayException INVALID_ARGUMENT when title or metadata exceed their limits
     */
    public SessionState create(String systemPrompt, String title, Map<String, String> metadata) {
        checkTitle(title);
        checkMetadata(metadata);
        Session session = store.create(title, metadata,
                systemPrompt == null ? ChatTemplate.DEFAULT_SYSTEM_PROMPT : systemPrompt);
        return state(session);
    }

    /** @throws GatewayException NOT_FOUND naming the id */
    public SessionState get(String sessionId) {
        return state(require(sessionId));
    }

    /**
     * A page of sessions, most recently updated first.
     *
     * @param pageSize >= 1
     * @throws GatewayException INVALID_ARGUMENT for a page token the store did not issue
     */
    public SessionPage list(int pageSize, String pageToken) {
        return store.list(pageSize, pageToken);
    }

    /** The state of a listed session (its running turn and token count). */
    public SessionState state(Session session) {
        RunningTurn turn = running.get(session.id());
        return new SessionState(session, historyTokens(session), turn == null ? "" : turn.requestId());
    }

    /**
     * Deletes a session: removes its history, stops its running turn (on this gateway, or on the
     * gateway sharing the store that runs it) and frees its KV on the shards.
     *
     * @throws GatewayException NOT_FOUND naming the id
     */
    public void delete(String sessionId) {
        Session session = require(sessionId);
        Optional<String> leasedBy = store.deleteNamingTurn(sessionId);
        if (leasedBy.isEmpty()) {
            throw notFound(sessionId);
        }
        // From here no new turn can start (it re-reads the session under its reservation). A running
        // turn is cancelled and awaited, so that the engine has settled its KV before it is freed.
        RunningTurn turn = running.get(sessionId);
        if (turn != null) {
            turn.deletedHere = true;
            generations.cancel(turn.requestId());
            try {
                turn.ended().get(CANCEL_WAIT_SECONDS, TimeUnit.SECONDS);
            } catch (TimeoutException | ExecutionException e) {
                LOG.warnf("session %s: turn %s did not end within %d s of its cancel; freeing its KV anyway",
                        sessionId, turn.requestId(), CANCEL_WAIT_SECONDS);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        } else if (!leasedBy.get().isEmpty()) {
            // The turn runs on another gateway. It stops the turn when its poll finds the session
            // gone (or the cancel's mark), and frees the KV it holds once the turn has ended: its
            // lease finds the row deleted. Waiting for the cancel's answer makes the delete return
            // after the turn has stopped; when the owner is slow to answer, it still stops it.
            stopElsewhere(sessionId, leasedBy.get());
        }
        generations.release(session.sequenceId());
    }

    private void stopElsewhere(String sessionId, String requestId) {
        try {
            CancelOutcome outcome = generations.cancelAnywhere(requestId);
            LOG.debugf("session %s deleted; its turn %s on another gateway: %s", sessionId, requestId, outcome);
        } catch (GatewayException e) {
            LOG.warnf("session %s deleted; its turn %s on another gateway stops at that gateway's next poll (%s)",
                    sessionId, requestId, e.getMessage());
        }
    }

    /**
     * One turn on a session, started when the returned stream is subscribed. The history is
     * committed before the Finished event is passed on, so a client that has seen Finished reads
     * the new history.
     *
     * @param systemOverride replaces the session's system prompt for this turn only; null: none
     * @throws GatewayException (as the stream's failure) NOT_FOUND for an unknown session,
     *     FAILED_PRECONDITION when a turn already runs on it, INVALID_ARGUMENT for bad parameters or
     *     a prompt that is too long, and whatever {@link Generations#generate} fails with
     */
    public Multi<GenerationEvent> chat(String sessionId, String userMessage, String systemOverride,
                                       RequestedParams params, String requestId) {
        Objects.requireNonNull(userMessage, "userMessage");
        Objects.requireNonNull(requestId, "requestId");
        return Multi.createFrom().deferred(() -> startTurn(sessionId, userMessage, systemOverride, params, requestId));
    }

    private Multi<GenerationEvent> startTurn(String sessionId, String userMessage, String systemOverride,
                                             RequestedParams params, String requestId) {
        require(sessionId);
        GenerationSettings settings = GenerationSettings.resolve(params, defaults);
        RunningTurn turn = new RunningTurn(requestId);
        RunningTurn other = running.putIfAbsent(sessionId, turn);
        if (other != null) {
            throw TurnLease.busy(sessionId, other.requestId());
        }
        try {
            // Across gateways sharing the store: FAILED_PRECONDITION while another gateway runs one.
            turn.lease = store.leaseTurn(sessionId, requestId);
            // Read under the reservation: the previous turn has committed, so this is the latest history.
            Session session = require(sessionId);
            turn.sequenceId = session.sequenceId();
            String system = systemOverride == null ? session.systemPrompt() : systemOverride;
            int[] promptIds = prompts.build(new Conversation(system, session.turns(), userMessage));
            limits.checkPrompt("user_message", promptIds.length);
            GenerationRequest request = new GenerationRequest(requestId, sessionId, session.sequenceId(), true,
                    promptIds, settings);
            return generations.generate(request)
                    .onItem().transform(event -> event instanceof Finished finished
                            ? finish(sessionId, turn, userMessage, finished) : event)
                    .onTermination().invoke(() -> end(sessionId, turn, false));
        } catch (RuntimeException e) {
            end(sessionId, turn, true);
            throw e;
        }
    }

    /**
     * Commits a finished turn and ends the reservation, before Finished reaches the client. A turn
     * whose session was deleted before it could commit ends as CANCELLED: what the client is told
     * matches what the session kept.
     */
    private Finished finish(String sessionId, RunningTurn turn, String userMessage, Finished finished) {
        try {
            if (finished.reason() == FinishReason.STOP || finished.reason() == FinishReason.LENGTH) {
                String reply = finished.text().strip();
                store.appendTurn(sessionId, message(Role.USER, userMessage), message(Role.ASSISTANT, reply));
            }
            return finished;
        } catch (GatewayException e) {
            if (e.kind() != GatewayException.Kind.NOT_FOUND) {
                throw e;
            }
            LOG.debugf("session %s was deleted during request %s; turn not committed", sessionId, turn.requestId());
            return new Finished(FinishReason.CANCELLED, "", finished.text(), finished.completionIds(),
                    finished.usage(), finished.timeToFirstTokenNanos(), finished.totalNanos(), finished.queueNanos());
        } finally {
            // The lease goes back before Finished reaches the client: its next turn, sent to any
            // gateway as soon as it has seen Finished, finds the session free.
            end(sessionId, turn, true);
        }
    }

    /**
     * Ends a turn's reservation and gives its lease back ({@code now}: blocking, else off this
     * thread, which may be one that must not block); idempotent (Finished ends it, and so does the
     * stream's end). When the lease finds that another gateway deleted the session meanwhile, the
     * KV is this gateway's to free (the deleter can only free its own gateway's sequences).
     */
    private void end(String sessionId, RunningTurn turn, boolean now) {
        running.remove(sessionId, turn);
        if (turn.ended().complete(null)) {
            Runnable freeKv = () -> {
                if (!turn.deletedHere && turn.sequenceId != null) {
                    LOG.debugf("session %s was deleted during request %s; freeing its KV", sessionId,
                            turn.requestId());
                    generations.release(turn.sequenceId);
                }
            };
            if (now) {
                if (turn.lease.release()) {
                    freeKv.run();
                }
            } else {
                turn.lease.releaseLater(freeKv);
            }
        }
    }

    private SessionMessage message(Role role, String content) {
        return new SessionMessage(role, content, tokenizer.encodeOrdinary(content).length, clock.instant());
    }

    /**
     * ChatML tokens of the whole history: [S] role NL content [E] per block, NL between blocks.
     * Role and content are encoded separately (SPEC 5.2), so the count adds up from the parts.
     */
    private int historyTokens(Session session) {
        int tokens = framing("system") + tokenizer.encodeOrdinary(session.systemPrompt()).length;
        for (SessionMessage message : session.messages()) {
            String role = message.role() == Role.USER ? "user" : "assistant";
            tokens += 1 + framing(role) + message.tokenCount();
        }
        return tokens;
    }

    /** [S] + role + NL + [E]. */
    private int framing(String role) {
        return 3 + tokenizer.encodeOrdinary(role).length;
    }

    private Session require(String sessionId) {
        return store.get(sessionId).orElseThrow(() -> notFound(sessionId));
    }

    private static GatewayException notFound(String sessionId) {
        return GatewayException.notFound("session_id: no session " + sessionId);
    }

    private static void checkTitle(String title) {
        if (title.codePointCount(0, title.length()) > MAX_TITLE_CHARS) {
            throw GatewayException.invalid("title: at most " + MAX_TITLE_CHARS + " characters, got "
                    + title.codePointCount(0, title.length()));
        }
    }

    private static void checkMetadata(Map<String, String> metadata) {
        if (metadata.size() > MAX_METADATA_ENTRIES) {
            throw GatewayException.invalid("metadata: at most " + MAX_METADATA_ENTRIES + " entries, got "
                    + metadata.size());
        }
        metadata.forEach((key, value) -> {
            int keyBytes = utf8Length(key);
            if (keyBytes < 1 || keyBytes > MAX_METADATA_KEY_BYTES) {
                throw GatewayException.invalid("metadata: key '" + key + "' must be 1 to " + MAX_METADATA_KEY_BYTES
                        + " bytes, got " + keyBytes);
            }
            if (utf8Length(value) > MAX_METADATA_VALUE_BYTES) {
                throw GatewayException.invalid("metadata['" + key + "']: at most " + MAX_METADATA_VALUE_BYTES
                        + " bytes, got " + utf8Length(value));
            }
        });
    }

    private static int utf8Length(String text) {
        return text.getBytes(java.nio.charset.StandardCharsets.UTF_8).length;
    }
}
