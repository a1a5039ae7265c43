"""Tests of the Python client against a running dev agent.

python_test.go starts the agent (dev mode, the fake CCP, deliveries) and
runs these with Debian's python3; they need the CREDAGENT_TEST_* variables
it sets, and are skipped without them.
"""

import hashlib
import io
import logging
import os
import pickle
import unittest

import credagent

ENV = os.environ.get("CREDAGENT_TEST_SOCKET")


def sha(s):
    return hashlib.sha256(s.encode("utf-8")).hexdigest()


@unittest.skipUnless(ENV, "run by python_test.go against a dev agent")
class AgainstAgent(unittest.TestCase):
    def setUp(self):
        self.client = credagent.Client(ENV, timeout=20)
        self.name = os.environ["CREDAGENT_TEST_NAME"]
        self.user = os.environ["CREDAGENT_TEST_USERNAME"]
        self.pw_sha = os.environ["CREDAGENT_TEST_PASSWORD_SHA256"]

    def tearDown(self):
        self.client.close()

    def test_resolve(self):
        with self.client.resolve(self.name, run_id="py-run-1", flow_id="py-flow") as res:
            cred = res[self.name]
            self.assertEqual(cred.username, self.user)
            self.assertEqual(sha(cred.password.reveal()), self.pw_sha)
            self.assertIsNone(cred.error)
            pw = cred.password.reveal()
        self.assertEqual(len(cred.password), 0, "the with block did not wipe the password")
        del pw

    def test_password_never_prints(self):
        res = self.client.resolve(self.name)
        cred = res[self.name]
        pw = cred.password.reveal()
        buf = io.StringIO()
        log = logging.getLogger("credagent-test")
        h = logging.StreamHandler(buf)
        log.addHandler(h)
        log.setLevel(logging.DEBUG)
        try:
            log.info("got %s", cred)
            log.info("got %r", cred)
            log.info("password %s %r", cred.password, cred.password)
            log.info("resolution %s", res)
            log.info(f"{cred.password} {cred.password!r} {cred.password:>20}")
        finally:
            log.removeHandler(h)
        text = buf.getvalue() + repr(cred) + str(cred) + repr(res) + str(vars(res))
        self.assertNotIn(pw, text)
        self.assertIn("[REDACTED]", text)
        for obj in (cred, cred.password):
            with self.assertRaises(TypeError):
                pickle.dumps(obj)
        res.wipe()

    def test_several_names_in_order_with_typed_errors(self):
        res = self.client.resolve(["no-such", self.name])
        self.assertEqual([c.name for c in res], ["no-such", self.name])
        with self.assertRaises(credagent.UnknownCredentialError) as cm:
            res["no-such"]
        e = cm.exception
        self.assertIsInstance(e, credagent.CredAgentError)
        self.assertEqual(e.error_class, "unknown_credential")
        self.assertIn("no-such", e.message)
        self.assertEqual(res[self.name].username, self.user)
        with self.assertRaises(credagent.UnknownCredentialError):
            res.raise_for_errors()
        res.wipe()

    def test_get_raises_the_class(self):
        with self.assertRaises(credagent.NotFoundError) as cm:
            self.client.get("missing-object")
        self.assertEqual(cm.exception.error_class, "not_found")
        self.assertEqual(cm.exception.code, "APPAP004E")

    def test_forbidden_names_the_rule(self):
        with self.assertRaises(credagent.ForbiddenError) as cm:
            self.client.resolve("secret-hr")
        self.assertEqual(cm.exception.error_class, "forbidden")
        self.assertEqual(cm.exception.http_status, 403)
        self.assertEqual(cm.exception.rule, "python-test")

    def test_check(self):
        out = self.client.check(self.name, "no-such")
        self.assertIsNone(out[self.name])
        self.assertIsInstance(out["no-such"], credagent.UnknownCredentialError)

    def test_status(self):
        st = self.client.status()
        self.assertTrue(st["ready"])
        self.assertEqual(st["keystore"]["backend"], "file")

    def test_keeps_one_connection(self):
        for _ in range(3):
            self.client.resolve(self.name).wipe()
        conn = self.client._conn
        self.assertIsNotNone(conn)
        for _ in range(3):
            self.client.resolve(self.name).wipe()
        self.assertIs(self.client._conn, conn)


class Offline(unittest.TestCase):
    def test_unreachable(self):
        c = credagent.Client("/nonexistent/credagent/agent.sock", timeout=2)
        with self.assertRaises(credagent.AgentUnreachableError) as cm:
            c.status()
        self.assertEqual(cm.exception.error_class, "agent_unreachable")

    def test_error_for_unknown_class(self):
        e = credagent.error_for({"class": "something_new", "message": "m"})
        self.assertIs(type(e), credagent.CredAgentError)
        self.assertEqual(e.error_class, "something_new")

    def test_dev_socket(self):
        self.assertTrue(credagent.dev_socket("dev").endswith(os.path.join("dev", "agent.sock")))

    def test_names_required(self):
        with self.assertRaises(ValueError):
            credagent.Client("/x").resolve()


if __name__ == "__main__":
    unittest.main()
