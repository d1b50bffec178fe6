import Testing
import TygerClient

@Suite struct ServiceURLTests {
    @Test(arguments: [
        ("https://tyger.example.com", true), ("http+unix:///tmp/api.sock:", true), ("unix:///tmp/api.sock", true),
        ("http://localhost:8080", true), ("http://LOCALHOST", true), ("http://127.0.0.1:1", true),
        ("http://127.5.6.7:80/x", true), ("http://[::1]:8080", true), ("http://tyger.example.com:8080", false),
        ("http://192.0.2.1", false), ("http://127.0.0.1.example.com", false), ("http://[2001:db8::1]:80", false),
        ("http://10.0.0.1:8080", false),
    ])
    func tokensStayOffTheNetworkOnlyOverPrivateChannels(url: String, isPrivate: Bool) throws {
        #expect(try ServiceURL(url).isPrivateChannel == isPrivate)
    }
}
