package qwen.gateway.session;

import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.security.SecureRandom;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.SQLException;
import java.sql.Statement;
import java.util.HexFormat;

/**
 * The PostgreSQL server the session-store tests use: {@code QWEN_TEST_POSTGRES_URL}, which .ci/run
 * sets after starting one on loopback ({@code export QWEN_TEST_POSTGRES_URL=$(.ci/postgres)} does
 * the same by hand). Each test class gets its own table, dropped afterwards.
 */
final class TestPostgres {

    static final String ENV = "QWEN_TEST_POSTGRES_URL";

    private TestPostgres() {
    }

    /** The URL; skips the calling test, saying how to run it, when none is set. */
    static String url() {
        String url = System.getenv(ENV);
        assumeTrue(url != null && !url.isBlank(), "no PostgreSQL server for the session-store tests: run "
                + "`export " + ENV + "=$(.ci/postgres)` first (.ci/run does)");
        return url;
    }

    static String freshTable() {
        return "qwen_sessions_test_" + HexFormat.of().formatHex(new SecureRandom().generateSeed(6));
    }

    /** Drops the session table and the running requests' table beside it. */
    static void drop(String url, String table) throws SQLException {
        try (Connection c = DriverManager.getConnection(url); Statement s = c.createStatement()) {
            s.execute("DROP TABLE IF EXISTS " + table + ", " + table + "_requests");
        }
    }
}
