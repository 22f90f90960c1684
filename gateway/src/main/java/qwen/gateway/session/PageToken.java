package qwen.gateway.session;

import java.nio.charset.StandardCharsets;
import java.time.Instant;
import java.util.Base64;
import java.util.Comparator;
import qwen.gateway.chat.GatewayException;

/**
 * Where a page of the session list ends: the sort key of its last session. The next page starts
 * strictly after it, so sessions created or updated between two calls do not shift the pages.
 * On the wire it is opaque: URL-safe base64 of "v1:seconds:nanos:id".
 */
record PageToken(Instant updateTime, String id) {

    /** The list order: most recently updated first, then by id. */
    static final Comparator<Session> ORDER = Comparator.comparing(Session::updateTime).reversed()
            .thenComparing(Session::id);

    private static final String VERSION = "v1";

    static PageToken after(Session last) {
        return new PageToken(last.updateTime(), last.id());
    }

    /** Whether {@code session} sorts after this token's position, i.e. belongs to a later page. */
    boolean precedes(Session session) {
        int byTime = session.updateTime().compareTo(updateTime);
        return byTime < 0 || (byTime == 0 && session.id().compareTo(id) > 0);
    }

    String encode() {
        String plain = VERSION + ":" + updateTime.getEpochSecond() + ":" + updateTime.getNano() + ":" + id;
        return Base64.getUrlEncoder().withoutPadding().encodeToString(plain.getBytes(StandardCharsets.UTF_8));
    }

    /** @throws GatewayException INVALID_ARGUMENT when the text is not a token {@link #encode} made */
    static PageToken decode(String token) {
        try {
            String plain = new String(Base64.getUrlDecoder().decode(token), StandardCharsets.UTF_8);
            String[] parts = plain.split(":", 4);
            if (parts.length == 4 && parts[0].equals(VERSION) && !parts[3].isEmpty()) {
                return new PageToken(
                        Instant.ofEpochSecond(Long.parseLong(parts[1]), Long.parseLong(parts[2])), parts[3]);
            }
        } catch (IllegalArgumentException | java.time.DateTimeException e) {
            // fall through: not one of ours
        }
        throw GatewayException.invalid("page_token: not a token this server issued; pass the"
                + " next_page_token of the previous ListSessions, or \"\" for the first page");
    }
}
