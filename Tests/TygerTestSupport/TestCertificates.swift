import Foundation

/// A CA of the test's own and a server certificate it signed for `127.0.0.1`, made with `openssl` in `directory`:
/// `ca.pem`, `cert.pem`, `key.pem` (for a server's `--tls-cert` and `--tls-key`, and a client's `--ca-cert`).
public func makeTestCertificates(in directory: String) async throws {
    let made = try await runShell(
        """
        set -e
        cd '\(directory)'
        openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout ca.key -out ca.pem -days 2 \\
            -subj /CN=tyger-test-ca -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign
        openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout key.pem -out cert.csr -subj /CN=127.0.0.1
        printf 'subjectAltName=IP:127.0.0.1\\nbasicConstraints=CA:FALSE\\nextendedKeyUsage=serverAuth\\n' > ext.cnf
        openssl x509 -req -in cert.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out cert.pem -days 2 -extfile ext.cnf
        """
    )
    guard made.exitCode == 0 else { throw TestSupportError("cannot make the test certificates: \(made)") }
}
