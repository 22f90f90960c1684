package qwen.gateway.access;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** When keys are on, what a request must carry, and the per-key cap. */
class AccessControlTest {

    @Test
    void openOnLoopbackWithoutKeysRefusedBeyondLoopback() {
        AccessControl local = new AccessControl(TestAccessConfig.of(), false);
        assertFalse(local.enabled());
        assertTrue(local.check(null).allowed());

        IllegalStateException e = assertThrows(IllegalStateException.class,
                () -> new AccessControl(TestAccessConfig.of(), true));
        assertTrue(e.getMessage().contains("qwen.gateway.access.keys"), e.getMessage());

        assertFalse(new AccessControl(TestAccessConfig.of().withMode(AccessConfig.Mode.OFF), true).enabled());
        assertThrows(IllegalStateException.class,
                () -> new AccessControl(TestAccessConfig.of().withMode(AccessConfig.Mode.REQUIRED), false));
    }

    @Test
    void keysAreRequiredOnceConfiguredEvenOnLoopback() {
        AccessControl access = new AccessControl(TestAccessConfig.of("sk-alpha", "sk-beta"), false);
        assertTrue(access.enabled());
        assertEquals(AccessControl.Refusal.MISSING, access.check(null).refusal());
        assertEquals(AccessControl.Refusal.MISSING, access.check("Basic c2stYWxwaGE=").refusal());
        assertEquals(AccessControl.Refusal.MISSING, access.check("Bearer ").refusal());
        assertEquals(AccessControl.Refusal.INVALID, access.check("Bearer sk-alph").refusal());
        assertEquals(AccessControl.Refusal.INVALID, access.check("Bearer sk-alpha2").refusal());
        assertEquals(AccessControl.Refusal.INVALID, access.check("Bearer " + "x".repeat(10_000)).refusal());

        AccessControl.Verdict alpha = access.check("Bearer sk-alpha");
        assertTrue(alpha.allowed());
        assertEquals(ApiKeys.fingerprint("sk-alpha"), alpha.caller().fingerprint());
        assertTrue(access.check("bearer   sk-beta ").allowed(), "the scheme in any case, spaces around");
        assertFalse(alpha.caller().fingerprint().contains("alpha"), "a fingerprint does not reveal the key");
        assertFalse(access.check("Bearer wrong").message().contains("wrong"), "messages never repeat a key");
    }

    @Test
    void keysFileSkipsCommentsAndBlankLines(@TempDir Path dir) throws IOException {
        Path file = dir.resolve("keys");
        Files.writeString(file, "# gateway keys\n\nsk-file-one\n  sk-file-two  \n");
        AccessControl access = new AccessControl(TestAccessConfig.of().withFile(file), true);
        assertTrue(access.check("Bearer sk-file-one").allowed());
        assertTrue(access.check("Bearer sk-file-two").allowed());
        assertFalse(access.check("Bearer # gateway keys").allowed());

        IllegalStateException missing = assertThrows(IllegalStateException.class,
                () -> new AccessControl(TestAccessConfig.of().withFile(dir.resolve("absent")), true));
        assertTrue(missing.getMessage().contains("qwen.gateway.access.keys-file"), missing.getMessage());
    }

    @Test
    void aKeyWithWhitespaceInsideIsRefusedWithoutEchoingIt() {
        IllegalStateException e = assertThrows(IllegalStateException.class,
                () -> new AccessControl(TestAccessConfig.of("good", "bad key"), true));
        assertFalse(e.getMessage().contains("bad key"), e.getMessage());
        assertTrue(e.getMessage().contains("#2"), e.getMessage());
    }

    @Test
    void capLimitsEachKeySeparatelyAndPermitsReleaseOnce() {
        AccessControl access = new AccessControl(TestAccessConfig.of("sk-a", "sk-b").withCap(2), true);
        ApiKeys.Caller a = access.check("Bearer sk-a").caller();
        ApiKeys.Caller b = access.check("Bearer sk-b").caller();
        ConcurrencyCap cap = access.cap();

        ConcurrencyCap.Permit a1 = cap.tryAcquire(a);
        ConcurrencyCap.Permit a2 = cap.tryAcquire(a);
        assertNotNull(a1);
        assertNotNull(a2);
        assertNull(cap.tryAcquire(a), "a third generation of the same key is refused");
        assertNotNull(cap.tryAcquire(b), "another key has its own allowance");
        a1.close();
        a1.close(); // a second close gives nothing back twice
        assertEquals(1, cap.running(a));
        assertNotNull(cap.tryAcquire(a));
        assertNull(cap.tryAcquire(a));
        assertTrue(access.capMessage(a).contains(a.fingerprint()));

        assertThrows(IllegalStateException.class, () -> new AccessControl(TestAccessConfig.of("k").withCap(0), true));
    }
}
