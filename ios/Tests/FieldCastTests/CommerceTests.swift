import FieldCast
import XCTest

/// Selling from Swift: pins and offline sales reach the sandbox exactly once; conflicts are typed.
final class CommerceTests: XCTestCase {
    func testOfflineSalesSyncExactlyOnceAndAConflictReachesSwift() async throws {
        let sandbox = try Sandbox.start()
        defer { sandbox.close() }
        let db = FileManager.default.temporaryDirectory.appendingPathComponent("fieldcast-swift-\(UUID().uuidString).db").path
        let commerce = try FieldCast.commerce(
            databasePath: db,
            sync: SyncConfig(baseUrl: sandbox.baseUrl, token: sandbox.token, backoffMinMs: 100, backoffMaxMs: 1_000)
        )
        defer { commerce.close() }
        let catalog = try await commerce.refreshCatalog()
        XCTAssertEqual(catalog, 3, "the sandbox's seed catalog")
        let live = try await sandbox.createLiveSession()
        let streamer = try FieldCast.streamer(SessionConfig(
            ingestUrl: live.publishUrl, source: .testPattern, profile: .p270, adaptiveBitrate: false
        ))
        defer { streamer.close() }
        try streamer.linkCommerce(commerce, platformSessionId: live.id)
        try await within(seconds: 15) { try await streamer.start() }
        let pin = try await streamer.pin("orange-box")
        XCTAssertEqual(pin.productId, "orange-box")

        commerce.setNetworkAvailable(false)
        _ = try await within(seconds: 5) { await commerce.queue.first { $0.pausedReason == .offline } }
        let sales = [
            try await commerce.sell("orange-box", quantity: 2, sessionId: live.id),
            try await commerce.sell("honey-jar", quantity: 1, buyer: "Mei", sessionId: live.id),
            try await commerce.sell("egg-tray", quantity: 3, sessionId: live.id),
        ]
        let syncEvents = commerce.syncEvents
        let conflict = Task { () -> (recordId: String, code: String)? in
            for await event in syncEvents {
                if case let .conflict(recordId, code, _) = event { return (recordId, code) }
            }
            return nil
        }
        // The farmer sells at an old price: the platform refuses it with price_changed.
        let stale = try await commerce.sell("honey-jar", quantity: 1, unitPriceMinor: 4000, sessionId: live.id)
        XCTAssertEqual(commerce.queue.value.items.filter(\.isSale).count, 4, "the four sales wait offline")
        let before = try await sandbox.salesCount()
        XCTAssertEqual(before, 0)

        commerce.setNetworkAvailable(true)
        let refused = try await within(seconds: 15) { await conflict.value }
        XCTAssertEqual(refused?.recordId, stale.id)
        XCTAssertEqual(refused?.code, "price_changed")
        let idle = try await commerce.awaitIdle(timeoutMs: 15_000)
        XCTAssertTrue(idle, "the outbox drains")
        XCTAssertEqual(commerce.queue.value.conflicted, 1)

        let onPlatform = try await sandbox.request("GET", "/v1/sales?session_id=\(live.id)")
        for sale in sales {
            XCTAssertEqual(onPlatform.components(separatedBy: sale.id).count - 1, 1, "sale \(sale.id) once on the platform")
        }
        XCTAssertFalse(onPlatform.contains(stale.id), "the refused sale is not counted")
        let after = try await sandbox.salesCount()
        XCTAssertEqual(after, 3)
        let session = try await sandbox.request("GET", "/v1/live-sessions/\(live.id)")
        XCTAssertTrue(session.contains(pin.id), "the platform has the pin: \(session)")
        try await streamer.stop()
    }
}
