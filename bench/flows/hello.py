"""hello: three trivial steps (the README's flow)."""

from cairn import FlowSpec, step


class HelloFlow(FlowSpec):
    @step
    def start(self):
        self.greeting = "hello"
        self.next(self.shout)

    @step
    def shout(self):
        self.loud = self.greeting.upper()
        self.next(self.end)

    @step
    def end(self):
        print(self.loud)


if __name__ == "__main__":
    HelloFlow()
