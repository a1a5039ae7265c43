# The fake CCP as a FROM scratch image: no base image is pulled, the static
# binary from `make build` (CGO_ENABLED=0) is all there is.
#   make fakeccp-image
#   docker run --rm -p 127.0.0.1:8443:8443 -p 127.0.0.1:8444:8444 -v "$PWD/fakeccp-data:/data" credagent/fakeccp:dev
# The dev PKI and fixture are written to /data (mount it to get ca.pem,
# app.crt, app.key and app.p12 out). The admin API has no authentication:
# publish it on loopback only.
FROM scratch
COPY bin/fakeccp /fakeccp
VOLUME ["/data"]
EXPOSE 8443 8444
ENTRYPOINT ["/fakeccp"]
CMD ["dev", "--dir", "/data", "--listen", "0.0.0.0:8443", "--admin", "0.0.0.0:8444", "--san", "fakeccp"]
