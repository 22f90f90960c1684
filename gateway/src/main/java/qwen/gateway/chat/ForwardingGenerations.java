package qwen.gateway.chat;

import io.smallrye.mutiny.Multi;
import java.util.Set;

/**
 * Generations that hand every call to another engine: the base of the layers around the engine
 * (metrics, cancels shared between gateways), each overriding only what it adds to.
 */
public abstract class ForwardingGenerations implements Generations, AutoCloseable {

    /** The engine the calls go to. */
    protected final Generations engine;

    protected ForwardingGenerations(Generations engine) {
        this.engine = engine;
    }

    @Override
    public Multi<GenerationEvent> generate(GenerationRequest request) {
        return engine.generate(request);
    }

    @Override
    public boolean cancel(String requestId) {
        return engine.cancel(requestId);
    }

    @Override
    public CancelOutcome cancelAnywhere(String requestId) {
        return engine.cancelAnywhere(requestId);
    }

    @Override
    public void release(String sequenceId) {
        engine.release(sequenceId);
    }

    @Override
    public int queuedRequests() {
        return engine.queuedRequests();
    }

    @Override
    public int runningSequences() {
        return engine.runningSequences();
    }

    @Override
    public int idleSequences() {
        return engine.idleSequences();
    }

    @Override
    public Set<String> idleSequenceIds() {
        return engine.idleSequenceIds();
    }

    /** Closes the engine when it is closeable. */
    @Override
    public void close() throws Exception {
        if (engine instanceof AutoCloseable closeable) {
            closeable.close();
        }
    }
}
