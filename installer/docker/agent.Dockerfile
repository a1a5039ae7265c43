# The agent, FROM scratch, with the end-to-end test runner (scripts/e2e) as
# its client. The agent runs in dev mode on /agent (mount a directory there):
# file key store, inbox, state and socket /agent/agent.sock; a config.yaml
# and portal-signing.{key,pub} placed there beforehand are used.
#
# Build context: a directory holding bin/credagent and bin/e2e, both static
# (CGO_ENABLED=0), as scripts/e2e.sh prepares:
#   docker build -f installer/docker/agent.Dockerfile -t credagent/agent-e2e CONTEXT
FROM scratch
COPY bin/credagent /credagent
COPY bin/e2e /e2e
VOLUME /agent
ENTRYPOINT ["/credagent"]
CMD ["run", "--dev", "/agent"]
