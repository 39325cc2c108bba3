import Dispatch
DispatchQueue.global().asyncAfter(deadline: .now() + 3600) { print("x") }
dispatchMain()
