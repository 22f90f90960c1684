package qwen.tools;

import io.grpc.Grpc;
import io.grpc.InsecureChannelCredentials;
import io.grpc.ManagedChannel;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import java.io.BufferedReader;
import java.io.FileDescriptor;
import java.io.FileOutputStream;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.util.Set;
import java.util.UUID;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicReference;
import qwen.proto.chat.v1.ChatMessage;
import qwen.proto.chat.v1.ChatRequest;
import qwen.proto.chat.v1.ChatServiceGrpc;
import qwen.proto.chat.v1.ChatServiceGrpc.ChatServiceBlockingStub;
import qwen.proto.chat.v1.CreateSessionRequest;
import qwen.proto.chat.v1.DeleteSessionRequest;
import qwen.proto.chat.v1.Finished;
import qwen.proto.chat.v1.GenerationParams;
import qwen.proto.chat.v1.GetModelInfoRequest;
import qwen.proto.chat.v1.GetSessionRequest;
import qwen.proto.chat.v1.ModelInfo;
import qwen.proto.chat.v1.Role;
import qwen.proto.chat.v1.Session;
import sun.misc.Signal;

/**
 * {@code ./qwen chat}: a terminal chat with the gateway's ChatService, in the manner of Qwen's
 * cli_demo.py. The history lives in a server-side session, so each turn sends only the new user
 * message; the reply is printed token by token as the Delta events arrive. Ctrl-C during a reply
 * cancels that reply (the session keeps only finished turns); Ctrl-C at the prompt, EOF or
 * {@code :exit} leaves.
 */
public final class ChatCommand {

    private static final String HELP = """
            Commands:
              :help            this text
              :clear           start a new session (forget the history)
              :system <text>   start a new session with this system prompt (:system alone shows it)
              :history         print the session's messages
              :exit, :quit     leave (so do Ctrl-D and Ctrl-C at the prompt)
            Ctrl-C while a reply is printing stops that reply and returns to the prompt.""";

    private final ChatServiceBlockingStub stub;
    private final GenerationParams params;
    private final PrintStream out = new PrintStream(new FileOutputStream(FileDescriptor.out), true, StandardCharsets.UTF_8);
    private final AtomicReference<ChatTurn> running = new AtomicReference<>();
    /** Input from a pipe or file is echoed, so that a transcript shows both sides. */
    private final boolean echo = System.console() == null || !System.console().isTerminal();
    private Session session;
    /** Whether this run made {@link #session}, and so may delete it when starting another. */
    private boolean ownSession;

    private ChatCommand(ChatServiceBlockingStub stub, GenerationParams params) {
        this.stub = stub;
        this.params = params;
    }

    public static void main(String[] argv) {
        Args a;
        GenerationParams params;
        String host;
        int port;
        try {
            a = new Args(argv, Set.of("host", "port", "system", "temperature", "max-new-tokens", "session"), Set.of());
            params = params(a);
            host = a.get("host", "127.0.0.1");
            port = a.integer("port", 9000);
            if (a.has("session") && a.has("system")) {
                throw new IllegalArgumentException("--system starts a new session; it cannot be combined with --session");
            }
        } catch (IllegalArgumentException e) {
            System.err.println("qwen chat: " + e.getMessage());
            System.exit(2);
            return;
        }
        ManagedChannel channel = Grpc.newChannelBuilderForAddress(host, port, InsecureChannelCredentials.create()).build();
        int status = 0;
        try {
            new ChatCommand(ChatServiceGrpc.newBlockingStub(channel), params).run(a);
        } catch (StatusRuntimeException e) {
            System.err.println("qwen chat: " + host + ":" + port + ": " + oneLine(e)
                    + (e.getStatus().getCode() == Status.Code.UNAVAILABLE ? "; is ./qwen serve running?" : ""));
            status = 1;
        } catch (IOException e) {
            System.err.println("qwen chat: reading the terminal failed: " + e.getMessage());
            status = 1;
        } finally {
            channel.shutdownNow();
        }
        System.exit(status);
    }

    private static GenerationParams params(Args a) {
        GenerationParams.Builder p = GenerationParams.newBuilder();
        if (a.has("temperature")) {
            p.setTemperature(a.real("temperature", 1f));
        }
        if (a.has("max-new-tokens")) {
            int n = a.integer("max-new-tokens", 0);
            if (n < 1) {
                throw new IllegalArgumentException("--max-new-tokens must be >= 1, got " + n);
            }
            p.setMaxNewTokens(n);
        }
        return p.build();
    }

    private void run(Args a) throws IOException {
        ModelInfo info = stub.withDeadlineAfter(10, TimeUnit.SECONDS).getModelInfo(GetModelInfoRequest.getDefaultInstance());
        out.printf("Model: %s (%d layers, up to %d tokens per conversation)%n",
                info.getModelId(), info.getNumLayers(), info.getMaxSequenceTokens());
        if (info.getRandomWeights()) {
            out.println("WARNING: this is the DEMO MODEL with random weights: its answers are noise.");
        }
        if (a.has("session")) {
            session = stub.getSession(GetSessionRequest.newBuilder().setSessionId(a.required("session")).build());
            out.printf("Continuing session %s (%d messages).%n", session.getSessionId(), session.getMessageCount());
        } else {
            startSession(a.has("system") ? a.required("system") : null);
        }
        out.println("Type :help for commands, :exit to leave.");
        Signal.handle(new Signal("INT"), signal -> interrupt());
        loop(new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8)));
        goodbye();
    }

    private void loop(BufferedReader in) throws IOException {
        while (true) {
            out.print("\nUser> ");
            out.flush();
            String line = in.readLine();
            if (line == null) {
                out.println();
                return;
            }
            line = line.strip();
            if (echo) {
                out.println(line);
            }
            if (line.isEmpty()) {
                continue;
            }
            try {
                if (line.startsWith(":")) {
                    if (!command(line)) {
                        return;
                    }
                } else {
                    reply(line);
                }
            } catch (StatusRuntimeException e) {
                out.println();
                out.println("error: " + oneLine(e));
            }
        }
    }

    /** Runs a ":" command; false when it asks to leave. */
    private boolean command(String line) {
        int space = line.indexOf(' ');
        String name = space < 0 ? line : line.substring(0, space);
        String rest = space < 0 ? "" : line.substring(space + 1).strip();
        switch (name) {
            case ":exit", ":quit", ":q" -> {
                return false;
            }
            case ":help", ":h" -> out.println(HELP);
            case ":clear" -> startSession(session.getSystemPrompt());
            case ":system" -> {
                if (rest.isEmpty()) {
                    out.println("System prompt: " + session.getSystemPrompt());
                } else {
                    startSession(rest);
                }
            }
            case ":history" -> history();
            default -> out.println("unknown command " + name + "; :help lists the commands");
        }
        return true;
    }

    /** Sends one user message and prints the reply as it streams in. */
    private void reply(String message) {
        ChatRequest request = ChatRequest.newBuilder()
                .setSessionId(session.getSessionId())
                .setUserMessage(message)
                .setParams(params)
                .setRequestId("chat-" + UUID.randomUUID())
                .build();
        ChatTurn turn = new ChatTurn(stub, request);
        out.print("\nQwen: ");
        out.flush();
        running.set(turn);
        Finished finished;
        try {
            finished = turn.run(out);
        } finally {
            running.set(null);
        }
        out.println();
        if (finished == null) {
            out.println("[reply cancelled; it is not kept in the history]");
            return;
        }
        switch (finished.getFinishReason()) {
            case FINISH_REASON_LENGTH -> out.println("[reply cut off: max-new-tokens or the context length reached]");
            case FINISH_REASON_CANCELLED -> out.println("[reply cancelled; it is not kept in the history]");
            default -> { }
        }
    }

    /** Makes a new session (system prompt null: the server's default) and drops the old one if this run made it. */
    private void startSession(String systemPrompt) {
        CreateSessionRequest.Builder create = CreateSessionRequest.newBuilder().setTitle("qwen chat");
        if (systemPrompt != null) {
            create.setSystemPrompt(systemPrompt);
        }
        Session previous = ownSession ? session : null;
        session = stub.createSession(create.build());
        ownSession = true;
        if (previous != null) {
            stub.deleteSession(DeleteSessionRequest.newBuilder().setSessionId(previous.getSessionId()).build());
        }
        out.printf("New session %s; system prompt: %s%n", session.getSessionId(), session.getSystemPrompt());
    }

    private void history() {
        Session s = stub.getSession(GetSessionRequest.newBuilder().setSessionId(session.getSessionId()).build());
        out.println("System: " + s.getSystemPrompt());
        if (s.getMessagesCount() == 0) {
            out.println("(no messages yet)");
        }
        for (ChatMessage m : s.getMessagesList()) {
            out.println((m.getRole() == Role.ROLE_USER ? "User: " : m.getRole() == Role.ROLE_ASSISTANT ? "Qwen: " : "System: ")
                    + m.getContent());
        }
        out.printf("(%d messages, %d tokens)%n", s.getMessageCount(), s.getHistoryTokens());
    }

    /** Ctrl-C: cancels the reply being printed, or leaves when none is. */
    private void interrupt() {
        ChatTurn turn = running.get();
        if (turn != null) {
            Thread.ofVirtual().start(turn::cancel);
            return;
        }
        out.println();
        goodbye();
        System.exit(130);
    }

    private void goodbye() {
        if (session != null) {
            out.printf("Session %s is kept; continue it with ./qwen chat --session %s%n",
                    session.getSessionId(), session.getSessionId());
        }
    }

    /** "CODE: description (cause)", on one line. */
    private static String oneLine(StatusRuntimeException e) {
        StringBuilder line = new StringBuilder(e.getStatus().getCode().toString());
        if (e.getStatus().getDescription() != null) {
            line.append(": ").append(e.getStatus().getDescription());
        }
        if (e.getStatus().getCause() != null && e.getStatus().getCause().getMessage() != null) {
            line.append(" (").append(e.getStatus().getCause().getMessage()).append(')');
        }
        return line.toString().replaceAll("\\s+", " ").strip();
    }
}
