"""The execution-scoped API token (ATTUNE-TODAY 7; jwt.rs and executor.rs
upstream): an execution with permission sets gets ATTUNE_API_TOKEN, an HS256
JWT signed with security.jwt_secret (else Attune's insecure default) for its
executor identity, alive for its timeout plus 60 s, with standard access to its
action and, for a workflow task, its parent's; none without permission sets;
with permission sets but no executor the execution fails. The token is checked
here with Python's own hmac, and must appear in no log, result or artifact of
the worker's: the action hands it back reversed."""
import base64
import hashlib
import hmac
import json
import time
import unittest

from attune_support import PACK_REF, AttuneTestCase, scan_for

JWT_SECRET = "attune-compat-jwt-secret-5b0d4c"
DEFAULT_SECRET = "insecure_default_secret_change_in_production"
PERMISSION_SETS = ["standard", "ops.readers"]
TOKEN_ACTION = "%s.token_report" % PACK_REF
PARENT_ACTION = "flows.nightly_sync"
NO_EXECUTOR_ERROR = ("Failed to prepare execution context: Permission denied: Execution %d "
                     "has no executor identity for API access")


def b64url_decode(part):
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def verified_claims(token, secret):
    """The claims of an HS256 token whose signature holds under secret."""
    header, payload, signature = token.split(".")
    want = hmac.new(secret.encode("utf-8"), ("%s.%s" % (header, payload)).encode("ascii"),
                    hashlib.sha256).digest()
    if not hmac.compare_digest(b64url_decode(signature), want):
        raise AssertionError("the token's signature does not verify with the secret")
    for part in (header, payload, signature):
        if "=" in part:
            raise AssertionError("base64url with padding: %r" % part)
    return json.loads(b64url_decode(header)), json.loads(b64url_decode(payload))


class TokenTest(AttuneTestCase):

    @classmethod
    def worker_env(cls, name, extra=None):
        # Debug logging: the token must not show up even there.
        env = {"ATTUNE__SECURITY__JWT_SECRET": JWT_SECRET, "ATTUNE__LOG__LEVEL": "debug"}
        env.update(extra or {})
        return super().worker_env(name, env)

    @classmethod
    def setUpData(cls):
        cls.add_action("token_report", "token.sh", "shell")
        cls.identity = cls.db.insert_identity("compat-token-user")

    def token_of(self, run):
        self.assertCompleted(run)
        self.assertIs(run.data.get("present"), True, run.describe())
        return run.data["reversed"][::-1]

    def parent_execution(self):
        """A workflow's own execution, as the executor leaves it while its
        tasks run."""
        return self.db.value("INSERT INTO attune.execution (action_ref, status) "
                             "VALUES (%s, 'running') RETURNING id", (PARENT_ACTION,))

    def assertNowhere(self, token, run, worker=None):
        """Not in the row's result, the worker's log, or any file of the test
        (artifacts, logs, packs): only the action's reversed copy exists."""
        worker = worker or self.worker
        self.assertNotIn(token, json.dumps(run.result))
        self.assertNotIn(token, worker.log())
        self.assertEqual(scan_for(token, [self.tmp], self.started), [])

    def setUp(self):
        super().setUp()
        self.started = time.time()

    def test_token_claims_and_signature(self):
        before = int(time.time())
        run = self.run_action("token_report", {"word": "x"}, executor=self.identity,
                              permission_set_refs=PERMISSION_SETS, timeout_seconds=45)
        after = int(time.time())
        token = self.token_of(run)
        header, claims = verified_claims(token, JWT_SECRET)
        self.assertEqual(header, {"typ": "JWT", "alg": "HS256"})
        self.assertEqual(list(claims), ["sub", "login", "iat", "exp", "token_type", "scope",
                                        "metadata"])
        self.assertEqual(claims["sub"], str(self.identity))
        self.assertEqual(claims["login"], "execution:%d" % run.id)
        self.assertEqual((claims["token_type"], claims["scope"]), ("execution", "execution"))
        self.assertIs(type(claims["iat"]), int)
        self.assertTrue(before <= claims["iat"] <= after, (before, claims["iat"], after))
        self.assertEqual(claims["exp"] - claims["iat"], 45 + 60)
        self.assertEqual(claims["metadata"], {
            "execution_id": run.id,
            "action_ref": TOKEN_ACTION,
            "permission_set_refs": PERMISSION_SETS,
            "standard_access_action_refs": [TOKEN_ACTION],
            "standard_access_pack_refs": [PACK_REF],
        })
        self.assertNowhere(token, run)

    def test_workflow_task_gets_its_parents_action(self):
        parent = self.parent_execution()
        run = self.run_action("token_report", {"word": "x"}, executor=self.identity,
                              permission_set_refs=["standard"], parent=parent,
                              workflow_task={"workflow_execution": parent, "task_name": "fetch",
                                             "retry_count": 0, "timed_out": False})
        _, claims = verified_claims(self.token_of(run), JWT_SECRET)
        metadata = claims["metadata"]
        self.assertEqual(metadata["standard_access_action_refs"],
                         sorted([TOKEN_ACTION, PARENT_ACTION]))
        self.assertEqual(metadata["standard_access_pack_refs"],
                         [r.split(".", 1)[0] for r in sorted([TOKEN_ACTION, PARENT_ACTION])])

    def test_parent_without_workflow_task_is_left_out(self):
        run = self.run_action("token_report", {"word": "x"}, executor=self.identity,
                              permission_set_refs=["standard"], parent=self.parent_execution())
        _, claims = verified_claims(self.token_of(run), JWT_SECRET)
        self.assertEqual(claims["metadata"]["standard_access_action_refs"], [TOKEN_ACTION])

    def test_no_token_without_permission_sets(self):
        run = self.run_action("token_report", {"word": "x"}, executor=self.identity)
        self.assertCompleted(run)
        self.assertEqual(run.data, {"present": False}, run.describe())

    def test_permission_sets_without_executor_fail(self):
        run = self.run_action("token_report", {"word": "x"}, permission_set_refs=["standard"])
        self.assertEqual(run.status, "failed", run.describe())
        self.assertEqual(run.result.get("error"), NO_EXECUTOR_ERROR % run.id, run.describe())
        self.assertNotIn("present", str(run.result.get("stdout") or ""), "the action ran")
        self.assertReported(run, "failed", "Failed", "token_report")

    def test_default_secret_when_unset(self):
        worker = self.start_worker(extra={"ATTUNE__SECURITY__JWT_SECRET": None})
        self.assertIn("security.jwt_secret is not set", worker.log())
        run = self.run_action("token_report", {"word": "x"}, worker=worker,
                              executor=self.identity, permission_set_refs=["standard"])
        token = self.token_of(run)
        _, claims = verified_claims(token, DEFAULT_SECRET)
        self.assertEqual(claims["sub"], str(self.identity))
        self.assertNowhere(token, run, worker)
        self.assertNotIn("security.jwt_secret is not set", self.worker.log(),
                         "warned although the secret is set")


if __name__ == "__main__":
    unittest.main()
