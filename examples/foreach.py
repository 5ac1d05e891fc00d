"""foreach: one task per item, run in parallel; the join sees the results in
the order of the items. A nested foreach shows `foreach_stack()`."""

from cairn import FlowSpec, JSONType, Parameter, step


class ForeachFlow(FlowSpec):
    """Measures each word, and looks at its first two letters in a nested foreach."""

    words = Parameter("words", default='["cairn", "metaflow", "engine"]', type=JSONType,
                      help="a JSON list of words")

    @step
    def start(self):
        """Fan out over the words."""
        self.next(self.count, foreach="words")

    @step
    def count(self):
        """One word: self.input is the word, self.index its position."""
        self.word = self.input
        self.position = self.index
        self.letters = list(self.word[:2])
        self.next(self.letter, foreach="letters")

    @step
    def letter(self):
        """One letter of one word: foreach_stack() tells both indices."""
        (word_index, _, _), (letter_index, _, char) = self.foreach_stack()
        self.cell = (word_index, letter_index, char, char in "aeiou")
        self.next(self.count_join)

    @step
    def count_join(self, inputs):
        """Close the inner foreach: inputs come in letter order."""
        self.cells = [inp.cell for inp in inputs]
        self.merge_artifacts(inputs, include=["word", "position"])
        self.length = len(self.word)
        self.next(self.join)

    @step
    def join(self, inputs):
        """Close the outer foreach: inputs come in word order."""
        self.lengths = {inp.word: inp.length for inp in inputs}
        self.first_letters = [[cell[2] for cell in inp.cells] for inp in inputs]
        self.next(self.end)

    @step
    def end(self):
        """Print what each word gave."""
        print(f"lengths: {self.lengths}; first letters: {self.first_letters}")


if __name__ == "__main__":
    ForeachFlow()
