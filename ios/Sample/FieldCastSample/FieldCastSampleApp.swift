import FieldCast
import SwiftUI

/// The sample app: one screen, the farmer's live.
@main
struct FieldCastSampleApp: App {
    init() {
        FieldCast.initialize()
    }

    var body: some Scene {
        WindowGroup {
            LiveScreen(model: LiveModel(settings: .fromLaunchArguments()))
        }
    }
}
