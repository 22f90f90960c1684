package qwen.gateway.chat;

import jakarta.inject.Inject;
import jakarta.inject.Singleton;
import java.util.Objects;

/**
 * Turns a {@link Conversation} into prompt ids: Qwen's make_context (SPEC 5.2) with the history
 * budget of the generation config ({@code max_window_size}).
 */
@Singleton
public final class PromptBuilder {

    private final ChatTemplate template;
    private final int maxWindowSize;

    @Inject
    public PromptBuilder(ChatTemplate template, GenerationDefaults defaults) {
        this.template = Objects.requireNonNull(template, "template");
        this.maxWindowSize = defaults.maxWindowSize();
    }

    /**
     * The ChatML prompt ids for the conversation's query; history turns that do not fit the window
     * are dropped, oldest first.
     */
    public int[] build(Conversation conversation) {
        return context(conversation).ids();
    }

    /** Like {@link #build}, as a {@link ChatPrompt} that also says how many history turns were kept. */
    public ChatPrompt context(Conversation conversation) {
        return template.makeContext(conversation.systemPrompt(), conversation.history(), conversation.query(),
                maxWindowSize);
    }
}
