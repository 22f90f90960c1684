package qwen.gateway.session;

import java.util.List;

/**
 * One page of {@link SessionStore#list}, most recently updated first.
 *
 * @param sessions the sessions of this page
 * @param nextPageToken pass to {@link SessionStore#list} for the next page; "" on the last page
 */
public record SessionPage(List<Session> sessions, String nextPageToken) {

    public SessionPage {
        sessions = List.copyOf(sessions);
    }
}
